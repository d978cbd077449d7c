# The classic Keras MNIST tutorial, run on multilayer: the published program with `keras`
# replaced by `multilayer` in the imports and its three errors fixed (marked "FIX"), plus one
# addition at the end (marked "ADDED"): the test accuracy, which the tutorial never measures.
# The published formatting is kept, so the formatter is told to leave it alone:
# fmt: off
import os
from multilayer.models import Sequential
from multilayer.layers import Dense
from multilayer.datasets import mnist
from multilayer.utils import to_categorical
(train_data, train_labels), (test_data, test_labels) = mnist.load_data()
train_data = train_data.reshape((60000, 784))  # FIX: the closing parenthesis was missing
test_data = test_data.reshape((10000, 784))  # FIX: the test images were never flattened to 784
train_data = train_data.astype('float32') / 255
test_data = test_data.astype('float32') / 255
train_labels = to_categorical(train_labels)
test_labels = to_categorical(test_labels)
model = Sequential()
model.add(Dense(512, input_shape=(784, ), activation='relu'))
model.add(Dense(768, activation='relu'))
model.add(Dense(10, activation='softmax'))
model.compile(optimizer='adam', loss='categorical_crossentropy', metrics=['accuracy'])
# The tutorial trains 100 epochs; CI sets MULTILAYER_TUTORIAL_EPOCHS=1 to run it quickly.
EPOCHS = int(os.environ.get("MULTILAYER_TUTORIAL_EPOCHS", "100"))
model.fit(train_data, train_labels, epochs=EPOCHS)  # FIX: trained on an undefined `x`
# ADDED: the accuracy that matters is on the TEST set, which the model has never seen.
test_loss, test_accuracy = model.evaluate(test_data, test_labels)
print(f"Test accuracy: {test_accuracy:.4f}")
